"""The case conference: meetings and their agendas, minutes and decisions, actions, and the clocks."""
