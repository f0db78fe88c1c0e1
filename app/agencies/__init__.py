"""Agencies of the network and the API clients that act for them."""
