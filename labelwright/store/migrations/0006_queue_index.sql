-- 0006: the queue index covers is_gold, so picking the next ordinary item reads only the index (with
-- gold items in the table, 0002's index made every scanned entry fetch its row to test is_gold).
DROP INDEX items_queue;
CREATE INDEX items_queue ON items (project_id, is_open, is_gold, id);
