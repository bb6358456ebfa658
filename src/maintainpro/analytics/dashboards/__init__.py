"""Self-service analytics: saved questions on the semantic model and custom dashboards.

``records`` holds the tables, ``rules`` the pure checks (a question's query against the
semantic model, chart types, dashboard layouts and filters, sharing), ``filters`` which shared
dimensions a dashboard may filter on and which questions each filter reaches, ``store`` reads and
writes them for a user, ``transfer`` exports and imports dashboards as JSON and ``tables``
writes an answer as CSV or XLSX. See docs/dashboards.md.
"""
