"""The arena: anonymous side-by-side battles and a leaderboard with confidence, as in Chatbot Arena.

    battles    contenders (a model + decoding settings + optionally an adapter), fewest-votes-first pairs, and
               battles: two answers streamed at once into a buffer the page polls
    ratings    online Elo and Bradley–Terry on the 400-point scale, bootstrap 95 % intervals, Rank (UB), charts
    votes      the vote store (SQLAlchemy: SQLite by default, PostgreSQL with LLMLAB_DB_URL), class settings, the log
    classroom  the instructor password, the per-address vote burst limit, the join address and its QR code

The package re-exports the names the page uses (`arena.start_battle`, `arena.leaderboard`, ...); the shared limits
live where they are read: `arena.classroom.vote_limiter`, `arena.classroom.instructor_gate`, `arena.battles.STALL_S`.
"""
from labs.arena import votes  # noqa: F401
from labs.arena.battles import (BUILT_IN, MAX_ADAPTERS_LOADED, MAX_BATTLES_KEPT, QA_STOPS, Answer, Battle,  # noqa: F401
                                Contender, ModelLoader, adapter_module, check_prompt, contenders, counts_from,
                                draw_pair, get_battle, prompt_bank, sample_pair, start_battle)
from labs.arena.classroom import BurstLimit, PasswordGate, client_address, join_url, lan_address, qr_png  # noqa: F401
from labs.arena.ratings import (BASE_RATING, LN10, SCALE, LeaderboardRow, _encode, _win_matrix,  # noqa: F401
                                bootstrap_ci, bradley_terry, bt_from_wins, elo_history, elo_history_figure,
                                elo_over_orders, elo_update, expected_score, leaderboard, online_elo, pair_matrices,
                                rank_ub, ratings_figure, score_a)
