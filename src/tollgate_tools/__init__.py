"""Operator tools around Tollgate (OpenAPI import and annotation, alert-rule copies).

Not part of the edge bundle: these run on the operator's machine and in tests,
and may use the pinned packages of requirements-dev.txt.
"""
