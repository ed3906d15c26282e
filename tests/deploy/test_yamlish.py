"""The compose reader reads its subset exactly and refuses what lies outside it."""

from __future__ import annotations

import pytest

from tests.deploy import yamlish


def test_reads_nested_mappings_sequences_and_scalars() -> None:
    text = """
# a comment
name: demo  # trailing comment
services:
  web:
    command: ["serve", "--port", "${PORT:-8000}"]
    ports:
      - "8000:8000"
      - 'it''s'
    replicas: 2
    quoted: "a # not a comment"
volumes:
  data:
"""
    assert yamlish.loads(text) == {
        "name": "demo",
        "services": {
            "web": {
                "command": ["serve", "--port", "${PORT:-8000}"],
                "ports": ["8000:8000", "it's"],
                "replicas": 2,
                "quoted": "a # not a comment",
            }
        },
        "volumes": {"data": None},
    }


@pytest.mark.parametrize(
    "text",
    [
        "a: &anchor 1\nb: *anchor\n",
        "a:\n  <<: {b: 1}\n",
        "a: |\n  text\n",
        "a: {b: 1}\n",
        "a: 1\na: 2\n",
        "a:\n  - b: 1\n",
        "a:\n\t b: 1\n",
        "a:\n    b: 1\n  c: 2\n",
        "---\na: 1\n",
    ],
)
def test_refuses_what_it_does_not_read(text: str) -> None:
    with pytest.raises(ValueError):
        yamlish.loads(text)
