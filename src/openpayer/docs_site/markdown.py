"""The developer guides as HTML: docs/*.md rendered by markdown-it-py (CommonMark plus tables).

The guides live in `docs/` (where the README and reviewers read them); the package reaches them through
`docs_site/guides/`, whose entries are symlinks to those files, so a wheel carries their content and there
is one source of truth. Raw HTML in the Markdown is escaped, headings get stable ids (for links into a
guide), and tables and code blocks are keyboard-focusable scroll regions so that a phone can scroll them
(axe's `scrollable-region-focusable`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape


@dataclass(frozen=True)
class Guide:
    slug: str
    source: str  # file name in docs/
    summary: str


# The guides a third-party developer reads, in reading order (both are docs/ files of the same name).
GUIDES: tuple[Guide, ...] = (
    Guide(
        "apis",
        "apis.md",
        "The FHIR bases, search, what each implementation guide requires, and examples to run.",
    ),
    Guide(
        "smart",
        "smart.md",
        "Registering, scopes, the standalone launch step by step, tokens, backend services, errors.",
    ),
)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class RenderedGuide:
    slug: str
    title: str
    summary: str
    html: Markup
    headings: tuple[Heading, ...]


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    return _NOT_SLUG.sub("-", text.lower()).strip("-") or "section"


def _heading_ids(state: StateCore) -> None:
    """Give every heading an `id` from its text (unique within the page: `-2`, `-3` on repeats)."""
    seen: dict[str, int] = {}
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        text = "".join(child.content for child in tokens[index + 1].children or [] if child.content)
        anchor = slugify(text)
        seen[anchor] = seen.get(anchor, 0) + 1
        if seen[anchor] > 1:
            anchor = f"{anchor}-{seen[anchor]}"
        token.attrSet("id", anchor)
        token.meta["text"] = text


def _table_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return '<div class="scroll" role="region" aria-label="Table" tabindex="0">\n' + self.renderToken(
        tokens, idx, options, env
    )


def _table_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


def _fence(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    token = tokens[idx]
    language = token.info.strip().split(" ")[0]
    css = f' class="language-{escape(language)}"' if language else ""
    label = "Example" if not language else f"Example ({escape(language)})"
    return (
        f'<pre class="scroll" tabindex="0" role="region" aria-label="{label}">'
        f"<code{css}>{escape(token.content)}</code></pre>\n"
    )


@cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.core.ruler.push("heading_ids", _heading_ids)
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    return md


def render_markdown(text: str, *, drop_title: bool = False) -> tuple[Markup, tuple[Heading, ...]]:
    """HTML and headings of `text`; `drop_title` leaves a leading `# Title` out of the HTML (the page shows
    it above the table of contents)."""
    md = _parser()
    env: dict[str, Any] = {}
    tokens = md.parse(text, env)
    headings = tuple(
        Heading(int(t.tag[1]), str(t.meta["text"]), str(t.attrGet("id")))
        for t in tokens
        if t.type == "heading_open"
    )
    if drop_title and tokens and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        tokens = tokens[3:]  # heading_open, inline, heading_close
    return Markup(md.renderer.render(tokens, md.options, env)), headings  # noqa: S704 - escaped by the parser


def guide_source(guide: Guide) -> str:
    return resources.files("openpayer.docs_site").joinpath("guides", guide.source).read_text(encoding="utf-8")


@cache
def rendered_guide(slug: str) -> RenderedGuide | None:
    """The guide as HTML (rendered once per process: the files ship with the package and do not change)."""
    guide = next((g for g in GUIDES if g.slug == slug), None)
    if guide is None:
        return None
    html, headings = render_markdown(guide_source(guide), drop_title=True)
    title = next((h.text for h in headings if h.level == 1), guide.slug)
    return RenderedGuide(guide.slug, title, guide.summary, html, headings)
