"""What civil-society partners pull: authorised summaries and the notices to delete them."""
