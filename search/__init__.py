"""Chinese search: jieba + pinyin analyzer and the whoosh index. Knows nothing of FastAPI or the database."""
