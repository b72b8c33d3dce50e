"""The village-facing UI on the node's UI listener (ui.host:ui.port, beside the /v1 gateway):
a Gradio app for laptops (with the `ui` extra) and a small phone page at /mobile/, both
clients of the bus like the CLI. Open on loopback; from anywhere else they ask for an API
key, kept in an HttpOnly cookie (access.py)."""
