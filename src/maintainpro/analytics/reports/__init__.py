"""Scheduled reports: built-in maintenance reports, saved queries and dashboards, rendered as CSV,
XLSX and PDF, sent by e-mail, webhook and SFTP on cron schedules in a time zone. See
docs/reports.md.

``records`` holds the tables, ``sources`` what a report shows (``ReportSource.run`` gives a
``ReportData``; ``dashboard_source`` a dashboard tile by tile), ``render_csv``/``render_xlsx``/
``render_pdf`` the files, ``scheduler`` the pure cron and catch-up rules, ``runner`` the runs
(claim, per-recipient filter, render, deliver, retry) and ``delivery`` the three ways out.
"""
