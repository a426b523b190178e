"""``python -m zoolens.examples``: print the folder of the shipped example outputs."""

from zoolens.examples import path

print(path())
