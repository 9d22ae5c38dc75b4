"""Folder processing shared by the CLI and the batch dialog."""
