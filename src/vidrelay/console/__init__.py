"""The web console: the operator's pages at `/console` and the customer portal at `/portal`.

Server-rendered (Jinja2) and thin like the API: each page reads through `services/` and
`store/` queries that are indexed and paged, and each form calls the same use case the admin
API and the CLI call. `pages` holds what both apps share (templates, security headers, error
pages), `sessions` the signed cookie and CSRF token, `charts` the server-drawn SVG charts.
"""
