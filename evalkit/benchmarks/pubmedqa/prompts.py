"""PubMedQA's prompts are the built-in templates' context variants (``prompts/<name>_context.txt``,
which show the abstract). Before they were a general feature they were named ``<name>_pubmedqa.txt``:
that suffix stays accepted, for users' own templates and for ``--prompt strict_pubmedqa``."""

from evalkit.data.prompts import register_context_suffix

OLD_SUFFIX = register_context_suffix("_pubmedqa")
