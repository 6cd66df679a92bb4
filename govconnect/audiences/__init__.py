"""Audience files: uploads streamed into saved lists, the refused-rows report, reuse by id."""
