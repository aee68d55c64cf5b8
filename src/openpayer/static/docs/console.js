// The API console: builds FHIR requests from a base's CapabilityStatement and runs them from the page.
// Vanilla JS served by the package (no framework, no CDN). Patient Access calls carry a member's access
// token obtained by the SMART standalone launch (authorization code + PKCE S256) with the developer's own
// client id; this page (/docs/console/callback) is the redirect target. The token lives in this page's
// memory only; only the PKCE verifier and state wait in sessionStorage while the browser is away signing in.
"use strict";

(function () {
  const PENDING = "openpayer.console.pending";
  const CALLBACK = "/docs/console/callback";
  const INTERACTIONS = {
    "search-type": "Search: GET [type]?parameters",
    read: "Read: GET [type]/[id]",
    vread: "Version read: GET [type]/[id]/_history/[version]",
    "history-instance": "History of one resource: GET [type]/[id]/_history",
    "history-type": "History of the type: GET [type]/_history",
  };
  // Operations the console can run with GET on an instance (the others need a body: see the guides).
  const GET_OPERATIONS = { everything: "Operation $everything: GET [type]/[id]/$everything" };
  const RESULT_PARAMS = ["_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total"];
  const OPERATION_PARAMS = ["_count", "_since", "_type"];

  const root = document.getElementById("console");
  const $ = (id) => document.getElementById(id);
  const state = {
    env: root.dataset.env,
    kind: root.dataset.kind,
    origin: root.dataset.origin,
    redirectUri: root.dataset.redirectUri,
    token: null, // the access token: never stored, never logged
    patient: null,
    resources: [],
    params: [],
    next: null,
  };

  function base64url(bytes) {
    let text = "";
    bytes.forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function say(id, text, isError) {
    const node = $(id);
    node.textContent = text;
    node.classList.toggle("error", Boolean(isError));
  }

  function option(select, value, label) {
    const node = document.createElement("option");
    node.value = value;
    node.textContent = label || value;
    select.appendChild(node);
  }

  // ---- SMART standalone launch ---------------------------------------------------------------------
  async function startSignIn(event) {
    event.preventDefault();
    if (!window.crypto || !window.crypto.subtle) {
      say("token-status", "This browser cannot make a PKCE challenge here (a secure context is needed: https or 127.0.0.1).", true);
      return;
    }
    const clientId = $("client-id").value.trim();
    const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
    const challenge = base64url(new Uint8Array(digest));
    const stateValue = base64url(crypto.getRandomValues(new Uint8Array(16)));
    sessionStorage.setItem(PENDING, JSON.stringify({ env: state.env, clientId, verifier, state: stateValue }));
    const query = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: state.redirectUri,
      scope: $("scope").value.trim(),
      state: stateValue,
      aud: `${state.origin}/${state.env}/fhir`,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    window.location.assign(`/${state.env}/auth/authorize?${query}`);
  }

  async function finishSignIn() {
    const query = new URLSearchParams(window.location.search);
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    if (!pending) {
      say("token-status", "No sign-in was started from this console. Choose a console and sign in from there.", true);
      return;
    }
    state.env = pending.env;
    state.kind = "fhir";
    $("client-id").value = pending.clientId;
    window.history.replaceState(null, "", `/docs/console/${state.env}/fhir`);
    if (query.get("error")) {
      const detail = query.get("error_description") || "";
      say("token-status", `Sign-in did not complete: ${query.get("error")} ${detail}`.trim(), true);
      return;
    }
    if (query.get("state") !== pending.state) {
      say("token-status", "Sign-in refused: the state returned is not the one this page sent.", true);
      return;
    }
    if (query.get("iss") !== `${state.origin}/${state.env}/auth`) {
      say("token-status", "Sign-in refused: the issuer is not this environment's authorization server.", true);
      return;
    }
    const response = await fetch(`/${state.env}/auth/token`, {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: query.get("code") || "",
        redirect_uri: state.redirectUri,
        code_verifier: pending.verifier,
        client_id: pending.clientId,
      }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.access_token) {
      say("token-status", `The token request was refused: ${body.error || response.status} ${body.error_description || ""}`.trim(), true);
      return;
    }
    state.token = body.access_token;
    state.patient = body.patient || null;
    const who = state.patient ? `patient ${state.patient}` : "no patient context";
    say("token-status", `Signed in: ${who}; granted ${body.scope}; the token expires in ${body.expires_in} s.`);
  }

  // ---- the request form, from the CapabilityStatement -----------------------------------------------
  function showBase() {
    const labels = { fhir: "Patient Access", directory: "Provider Directory and Formulary" };
    $("console-title").textContent = `${labels[state.kind]} console (${state.env})`;
    $("base-url").textContent = `${state.origin}/${state.env}/${state.kind}`;
    $("metadata-link").setAttribute("href", `/${state.env}/${state.kind}/metadata`);
    $("signin").hidden = state.kind !== "fhir";
  }

  async function loadCapability() {
    const response = await fetch(`/${state.env}/${state.kind}/metadata`, { headers: { Accept: "application/fhir+json" } });
    if (!response.ok) {
      say("capability-status", `The CapabilityStatement could not be read (${response.status}).`, true);
      return;
    }
    const capability = await response.json();
    const rest = (capability.rest || [])[0] || {};
    state.resources = (rest.resource || []).slice().sort((a, b) => a.type.localeCompare(b.type));
    const select = $("type");
    select.textContent = "";
    state.resources.forEach((r) => option(select, r.type));
    const preferred = state.patient ? "Patient" : state.kind === "directory" ? "PractitionerRole" : "ExplanationOfBenefit";
    if (state.resources.some((r) => r.type === preferred)) select.value = preferred;
    say("capability-status", `${state.resources.length} resource types (FHIR ${capability.fhirVersion}).`);
    $("request-form").hidden = false;
    typeChanged();
    if (state.patient) {
      $("interaction").value = "read";
      $("resource-id").value = state.patient;
      interactionChanged();
    }
  }

  function current() {
    return state.resources.find((r) => r.type === $("type").value) || { searchParam: [], interaction: [] };
  }

  function typeChanged() {
    const resource = current();
    const interactions = $("interaction");
    interactions.textContent = "";
    const codes = (resource.interaction || []).map((i) => i.code);
    Object.keys(INTERACTIONS).filter((code) => codes.includes(code)).forEach((code) => option(interactions, code, INTERACTIONS[code]));
    (resource.operation || []).filter((op) => GET_OPERATIONS[op.name])
      .forEach((op) => option(interactions, `$${op.name}`, GET_OPERATIONS[op.name]));
    state.params = [];
    renderParams();
    interactionChanged();
  }

  function fillParamNames(operation) {
    const names = $("param-name");
    const chosen = names.value;
    names.textContent = "";
    if (operation) {
      OPERATION_PARAMS.forEach((name) => option(names, name));
    } else {
      (current().searchParam || []).slice().sort((a, b) => a.name.localeCompare(b.name))
        .forEach((p) => option(names, p.name, `${p.name} (${p.type})`));
      RESULT_PARAMS.forEach((name) => option(names, name));
    }
    if ([...names.options].some((o) => o.value === chosen)) names.value = chosen;
    paramChanged();
  }

  function interactionChanged() {
    const code = $("interaction").value;
    const operation = code.startsWith("$");
    $("id-field").hidden = !operation && !["read", "vread", "history-instance"].includes(code);
    $("version-field").hidden = code !== "vread";
    $("params-field").hidden = code !== "search-type" && !operation;
    fillParamNames(operation);
    renderUrl();
  }

  function paramChanged() {
    const name = $("param-name").value;
    const resource = current();
    const declared = (resource.searchParam || []).find((p) => p.name === name);
    let hint = declared && declared.documentation ? declared.documentation : "";
    if (name === "_include" && resource.searchInclude) hint = `Declared: ${resource.searchInclude.join(", ")}`;
    if (name === "_revinclude" && resource.searchRevInclude) hint = `Declared: ${resource.searchRevInclude.join(", ")}`;
    $("param-doc").textContent = hint;
  }

  function addParam() {
    const value = $("param-value").value.trim();
    if (!value) {
      $("param-value").focus();
      return;
    }
    state.params.push([$("param-name").value, value]);
    $("param-value").value = "";
    renderParams();
    renderUrl();
  }

  function renderParams() {
    const list = $("param-rows");
    list.textContent = "";
    state.params.forEach(([name, value], index) => {
      const item = document.createElement("li");
      const text = document.createElement("code");
      text.textContent = `${name}=${value}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove ${name}=${value}`);
      remove.addEventListener("click", () => {
        state.params.splice(index, 1);
        renderParams();
        renderUrl();
      });
      item.append(text, remove);
      list.appendChild(item);
    });
  }

  function encode(value) {
    return encodeURIComponent(value).replace(/%7C/gi, "|").replace(/%3A/gi, ":").replace(/%2C/gi, ",").replace(/%2F/gi, "/");
  }

  function requestPath() {
    const code = $("interaction").value;
    const type = $("type").value;
    const id = encodeURIComponent($("resource-id").value.trim());
    const base = `/${state.env}/${state.kind}/${type}`;
    if (code === "read") return `${base}/${id}`;
    if (code === "vread") return `${base}/${id}/_history/${encodeURIComponent($("version-id").value.trim())}`;
    if (code === "history-instance") return `${base}/${id}/_history`;
    if (code === "history-type") return `${base}/_history`;
    const query = state.params.map(([n, v]) => `${encode(n)}=${encode(v)}`).join("&");
    const path = code.startsWith("$") ? `${base}/${id}/${code}` : base;
    return query ? `${path}?${query}` : path;
  }

  function renderUrl() {
    $("request-url").textContent = `GET ${state.origin}${requestPath()}`;
  }

  // ---- sending and showing ---------------------------------------------------------------------------
  function label(resource) {
    if (!resource) return "";
    const name = resource.name;
    if (typeof name === "string") return name;
    if (Array.isArray(name) && name[0]) return name[0].text || [name[0].given && name[0].given.join(" "), name[0].family].filter(Boolean).join(" ");
    const concept = resource.code || resource.type;
    if (concept && concept.text) return concept.text;
    if (concept && concept.coding && concept.coding[0]) return concept.coding[0].display || concept.coding[0].code || "";
    return "";
  }

  async function send(path) {
    const headers = { Accept: "application/fhir+json" };
    if (state.kind === "fhir" && state.token) headers.Authorization = `Bearer ${state.token}`;
    const auth = headers.Authorization ? ' -H "Authorization: Bearer $TOKEN"' : "";
    $("response-curl").textContent = `curl -H 'Accept: application/fhir+json'${auth} '${state.origin}${path}'`;
    say("response-status", `Sending GET ${path} …`);
    const response = await fetch(path, { headers });
    const text = await response.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { body = null; }
    $("response-body").textContent = body ? JSON.stringify(body, null, 2) : text;
    const entries = $("response-entries");
    entries.textContent = "";
    state.next = null;
    let summary = `${response.status} ${response.statusText}`;
    if (body && body.resourceType === "Bundle") {
      const items = body.entry || [];
      summary += `: Bundle with ${items.length} entries${body.total !== undefined ? ` of ${body.total}` : ""}.`;
      items.forEach((entry) => {
        const r = entry.resource || {};
        const item = document.createElement("li");
        const mode = entry.search && entry.search.mode === "include" ? " (included)" : "";
        item.textContent = `${r.resourceType}/${r.id}${mode} ${label(r)}`.trim();
        if (state.resources.some((t) => t.type === r.resourceType)) {
          const open = document.createElement("button");
          open.type = "button";
          open.className = "open";
          open.textContent = "Read";
          open.setAttribute("aria-label", `Read ${r.resourceType}/${r.id}`);
          open.addEventListener("click", () => readResource(r.resourceType, r.id));
          item.append(" ", open);
        }
        entries.appendChild(item);
      });
      const next = (body.link || []).find((l) => l.relation === "next");
      if (next) state.next = new URL(next.url).pathname + new URL(next.url).search;
    } else if (body && body.resourceType === "OperationOutcome") {
      const issue = (body.issue || [])[0] || {};
      summary += `: ${issue.diagnostics || issue.code || "OperationOutcome"}`;
    } else if (body && body.resourceType) {
      summary += `: ${body.resourceType}/${body.id} ${label(body)}`.trimEnd();
    }
    if (response.status === 401 && state.kind === "fhir") summary += " Sign a member in first.";
    say("response-status", summary, !response.ok);
    $("next-page").hidden = !state.next;
  }

  function readResource(type, id) {
    $("type").value = type;
    typeChanged();
    $("interaction").value = "read";
    $("resource-id").value = id;
    interactionChanged();
    send(requestPath()).catch((e) => say("response-status", String(e), true));
  }

  function wire() {
    $("signin-form").addEventListener("submit", (event) => { startSignIn(event).catch((e) => say("token-status", String(e), true)); });
    $("type").addEventListener("change", typeChanged);
    $("interaction").addEventListener("change", interactionChanged);
    $("param-name").addEventListener("change", paramChanged);
    $("add-param").addEventListener("click", addParam);
    $("param-value").addEventListener("keydown", (event) => {
      if (event.key === "Enter") { event.preventDefault(); addParam(); }
    });
    ["resource-id", "version-id"].forEach((id) => $(id).addEventListener("input", renderUrl));
    $("request-form").addEventListener("submit", (event) => {
      event.preventDefault();
      send(requestPath()).catch((e) => say("response-status", String(e), true));
    });
    $("next-page").addEventListener("click", () => {
      if (state.next) send(state.next).catch((e) => say("response-status", String(e), true));
    });
  }

  async function main() {
    wire();
    if (window.location.pathname === CALLBACK) await finishSignIn();
    if (!state.env) {
      say("capability-status", "Choose a console above.", true);
      return;
    }
    showBase();
    await loadCapability();
  }

  main().catch((e) => say("capability-status", String(e), true));
})();
