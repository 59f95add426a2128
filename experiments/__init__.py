"""effscale.experiments"""
