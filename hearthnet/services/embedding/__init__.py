"""embed.text: sentence embeddings on the mesh."""
