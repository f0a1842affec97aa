"""Collectors: find inputs, frame records, hand them to parsers, produce, checkpoint."""
