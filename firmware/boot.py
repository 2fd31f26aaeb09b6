# roam boot.py: runs after every reset, also when mpremote soft-resets into the raw REPL, so it
# does nothing that a tool connecting should pay for. The role and the safe-mode decision are
# in main.py, which a board runs only on a real boot (or Ctrl-D at the friendly REPL).
