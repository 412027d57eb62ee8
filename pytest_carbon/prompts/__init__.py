"""Prompt suites: YAML tasks whose code an LLM generates, verified then measured."""
