"""The sandbox package; see docs/sandbox.md."""
