"""(filled in by the dropout work)"""
__all__: list = []
