"""Helpers for the container image tests."""
