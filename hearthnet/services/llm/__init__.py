"""LLM service: backends behind llm.chat / llm.complete."""
