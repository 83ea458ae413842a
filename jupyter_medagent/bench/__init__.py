"""``medagent bench``: backends x tasks x wordings, each run judged on quality against the truth, with its
cost; and the judge suite, which scores each judge on correct and deliberately broken image/label pairs."""
