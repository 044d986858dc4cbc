"""Griffe extension for the API reference: fastgd's Sphinx-flavoured docstrings in Markdown.

The docstrings are numpydoc with reStructuredText roles and directives, which
mkdocstrings (Markdown) would print literally. Before they are parsed, this rewrites:

* ``:math:`x``` into ``$x$`` and ``.. math::`` blocks into ``$$ ... $$`` blocks
  (rendered by ``pymdownx.arithmatex`` and MathJax);
* ``:class:`X```, ``:func:``, ``:meth:``, ``:mod:``, ``:attr:``, ``:exc:``, ``:obj:``
  into optional cross-references: a link when ``X`` (resolved against the object's
  class, module and ``fastgd``) is documented on one of these pages, plain code
  otherwise (scikit-learn, SciPy and matplotlib names), never a build warning;
  ``~a.b.C`` shows ``C``, as in Sphinx;
* numpydoc's ``{"a", "b"}`` value sets and quoted values in ``name : type`` lines,
  which Griffe shows without braces, quotes or a following ``or None``: such types are
  shown as written;
* numpydoc's backslash continuation of a long ``name : type`` line, which Griffe does
  not join (and whose unindented continuation lines would leave the whole docstring
  indented, i.e. a Markdown code block).

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``);
it touches only the text that mkdocstrings renders, never the package.
"""

import html
import re
import textwrap
from functools import cached_property

import griffe

ROLE = re.compile(r":(?:py:)?(class|func|meth|mod|attr|exc|obj|data):`([^`]+)`")
MATH_ROLE = re.compile(r":math:`([^`]+)`")
MATH_DIRECTIVE = re.compile(r"^([ \t]*)\.\. math::[ \t]*\n", re.MULTILINE)
CONTINUATION = re.compile(r"([ ,])\\\n[ \t]*")
FIELD = re.compile(r"^(\w[\w, ]* : )(.*)$", re.MULTILINE)
CHOICES = re.compile(r"\{([^{}]*)\}")


def _math_blocks(text):
    """Turn every ``.. math::`` directive into ``$$`` blocks (one per equation)."""
    while True:
        m = MATH_DIRECTIVE.search(text)
        if m is None:
            return text
        indent = len(m.group(1).expandtabs())
        lines = text[m.end():].split("\n")
        body = []
        for line in lines:
            if line.strip() and len(line.expandtabs()) - len(line.expandtabs().lstrip()) <= indent:
                break
            body.append(line)
        rest = lines[len(body):]
        while body and not body[-1].strip():
            body.pop()
        equations = [eq.strip("\n") for eq in re.split(r"\n[ \t]*\n", textwrap.dedent("\n".join(body)))
                     if eq.strip()]
        pad = m.group(1)
        out = "\n\n".join(f"{pad}$$\n" + textwrap.indent(eq, pad) + f"\n{pad}$$" for eq in equations)
        text = text[:m.start()] + out + "\n\n" + "\n".join(rest)


class _AsWrittenTypes(griffe.Docstring):
    """A docstring whose parsed sections show some types as written in the docstring."""

    types_as_written: dict

    @cached_property
    def parsed(self):
        sections = self.parse()
        for section in sections:
            if section.kind.value in ("parameters", "attributes", "other parameters"):
                for item in section.value:
                    if item.name in self.types_as_written:
                        item.annotation = self.types_as_written[item.name]
        return sections


class RstToMarkdown(griffe.Extension):
    """Rewrite the reStructuredText parts of fastgd's docstrings for mkdocstrings."""

    def on_object(self, *, obj, loader, **kwargs):
        if obj.docstring is None or obj.is_alias:
            return
        text = obj.docstring.value
        text = CONTINUATION.sub(lambda m: m.group(1).strip() + " ", text)
        # Continuation lines written at column 0 (as numpydoc allows) made the cleaned
        # docstring keep its indentation: dedent again once they are joined.
        first, _, rest = text.partition("\n")
        text = first + "\n" + textwrap.dedent(rest) if rest else first
        # numpydoc's ``{"a", "b"} or None, default="a"``: Griffe keeps only what is inside
        # the braces, and renders strings in types (``int, "full" or None``) without
        # quotes. Parse ``Literal[...]`` instead of braces (which keeps the rest and the
        # default), then show such types as written.
        choices = {}

        def _choices(m):
            names, typ = m.group(1), m.group(2)
            if not re.search(r"[{\"']", typ):
                return m.group(0)
            for name in names.split(" : ")[0].split(","):
                choices[name.strip()] = re.sub(r",\s+default\s*[=:].*$", "", typ).strip()
            return names + CHOICES.sub(r"Literal[\1]", typ)

        text = FIELD.sub(_choices, text)
        text = _math_blocks(text)
        text = MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
        text = ROLE.sub(lambda m: self._ref(obj, loader, m.group(1), m.group(2)), text)
        obj.docstring.value = text
        if choices:
            obj.docstring.__class__ = _AsWrittenTypes
            obj.docstring.types_as_written = choices

    @staticmethod
    def _ref(obj, loader, role, target):
        target = target.strip().lstrip("!")
        short = target.startswith("~")
        target = target.lstrip("~").removesuffix("()")
        title = target.rsplit(".", 1)[-1] if short else target
        if role in ("func", "meth"):
            title += "()"
        identifier = target
        scopes = []
        scope = obj
        while scope is not None:
            scopes.append(scope.path)
            scope = scope.parent
        for path in [f"{prefix}.{target}" for prefix in scopes] + [target]:
            try:
                found = loader.modules_collection[path]
            except (KeyError, ValueError):
                continue
            try:
                identifier = found.canonical_path  # what the rendered page registers
            except griffe.AliasResolutionError:
                identifier = found.path
            break
        return (f'<autoref identifier="{html.escape(identifier)}" optional>'
                f"<code>{html.escape(title)}</code></autoref>")
