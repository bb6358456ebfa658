"""Real-time feeds: readings, alerts and work-order events as one normalised stream.

``stream.FeedStream`` takes stored readings (an ingest-pipeline listener) and outbox events
(alert and work-order topics), resolves each event's site, keeps a bounded replay buffer and fans
events out to Server-Sent Events and WebSocket connections (``sse``, ``ws``) and to push targets:
generic webhook streams (``webhook``) and Power BI push datasets (``powerbi``). Every channel
applies the same row-level security (``filters.FeedFilter`` over ``analytics.access.site_scope``)
and every connection is audited. See docs/realtime-feeds.md.
"""
