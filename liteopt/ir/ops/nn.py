"""(filled in)"""
