-- Group roles (issue #9): a group has one owner, any number of admins and its members.
--
-- 0001's CHECK on `members.role` allowed only 'owner' and 'member'. It was left unnamed, so
-- the server named it (MariaDB `CONSTRAINT_1`, MySQL `members_chk_1`): look the name up, drop
-- it, and add the wider rule under a name of our own.
SET @old_check = (SELECT CONSTRAINT_NAME FROM information_schema.TABLE_CONSTRAINTS
                  WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'members'
                    AND CONSTRAINT_TYPE = 'CHECK' LIMIT 1);
SET @drop_check = CONCAT('ALTER TABLE members DROP CONSTRAINT `', @old_check, '`');
PREPARE drop_check FROM @drop_check;
EXECUTE drop_check;
DEALLOCATE PREPARE drop_check;
ALTER TABLE members ADD CONSTRAINT members_role CHECK (role IN ('owner', 'admin', 'member'));

-- A role change is a group event in the conversation's log, stored as an `owner` row whose body
-- names the new role ('admin' or 'member'; empty, as in every row before this migration, means
-- owner). See migrations/sqlite/0007_roles.sql for why it has no kind of its own: both databases
-- keep the same rows.
