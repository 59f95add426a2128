"""effscale.reports"""
