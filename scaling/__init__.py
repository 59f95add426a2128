"""effscale.scaling"""
