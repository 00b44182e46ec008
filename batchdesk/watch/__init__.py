"""Drop folders: watched inboxes whose files become items of a rolling job."""
