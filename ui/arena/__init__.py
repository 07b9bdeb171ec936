"""Widgets and drawing for the arena page (pages/60_Arena.py), one module per tab; the page imports the modules.

- shared: who is here: this browser's address, the vote store, the instructor password, joining and restoring a session.
- battle: the ⚔️ Battle tab: contenders, settings, prompt, buttons, the live answers, the vote buttons.
- leaderboard: the 🏆 Leaderboard tab: rating settings, Bradley–Terry with intervals, Elo, pair matrices.
- votes: the 🗳️ Votes tab: the latest votes and the exports (also offered in the instructor panel).
- classroom: the 🧑‍🏫 Classroom tab: the join link, the instructor unlock, class switches, voters and the log.

The lesson (pair drawing, Elo, Bradley–Terry, bootstrap) lives in labs/arena/ (battles, ratings, classroom); votes, class settings and the
instructor's log live in labs/arena/votes.py. These helpers collect widgets and draw what those return.
"""
