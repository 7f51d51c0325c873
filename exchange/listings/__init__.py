"""The catalogue (数据交易目录清单): listings, revisions, review, search."""
