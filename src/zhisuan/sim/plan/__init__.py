"""Capacity and investment planning: every option × demand scenario replayed through the live scheduler,
then priced (`zhisuan plan`)."""
