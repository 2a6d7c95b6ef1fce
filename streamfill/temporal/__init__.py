"""streamfill.temporal"""
