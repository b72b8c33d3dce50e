"""The OpenAI-compatible gateway: plain HTTP for stock clients, API keys, routed over the mesh."""
