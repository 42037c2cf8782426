"""Command-line face (Typer + Rich). Parses arguments, calls the layers below, renders tables."""
