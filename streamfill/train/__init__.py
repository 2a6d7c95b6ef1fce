"""streamfill.train"""
