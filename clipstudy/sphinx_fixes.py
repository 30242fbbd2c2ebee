"""A fix to the book's theme stack, loaded as a Sphinx extension (`extra_extensions` in
_config.yml).

Sphinx 7.4 writes an inline script that an extension adds after the builder starts twice (its
second pass re-adds the script with filename '' where the first copy has None, so the duplicate
check misses it): sphinx-thebe's `const THEBE_JS_URL = ...` then fails with "Identifier
'THEBE_JS_URL' has already been declared" in the browser console on every page. Each page keeps
the first copy.
"""

from __future__ import annotations


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)  # after others add theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
