"""The keys of a JSON document at every depth (which optional keys a spec writes)."""


def json_keys(document) -> set:
    if isinstance(document, dict):
        return set(document) | {k for v in document.values() for k in json_keys(v)}
    if isinstance(document, list):
        return {k for v in document for k in json_keys(v)}
    return set()
