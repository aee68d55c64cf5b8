"""The member's pages beside the SMART authorization server (`/{env}/auth/`): connected apps (list and
revoke), the public app gallery, the member education of 45 CFR 156.221(g), and their sign-in and sign-out.
They share the authorization server's sign-in session cookie (`op_member`, path `/{env}/auth`), its CSRF
cookie and its page headers; `routes.install` adds them to the application."""
