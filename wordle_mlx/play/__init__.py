"""A model, a solver or an endpoint playing Wordle: prompts in, guesses out, games evaluated. Never imports training."""
