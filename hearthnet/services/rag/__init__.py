"""RAG: corpora of chunked, embedded documents with hybrid (vector + keyword) retrieval."""
