"""effscale.search"""
