"""The edge agent: connectors near the machines, a durable queue, forwarding to the hub."""
