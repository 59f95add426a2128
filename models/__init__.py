"""effscale.models"""
