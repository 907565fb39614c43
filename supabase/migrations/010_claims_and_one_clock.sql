-- claimed_by: which job of which run attempt holds an in_progress row; upload_key: where that job
-- is uploading; and one clock for finished_at.
--
-- workflow_run_id alone cannot tell apart two jobs of one run (a matrix whose legs got the same
-- dispatch id): both would pass the claim and race to finalize one row. The action writes
-- claimed_by = '<run id>/<run attempt>/<job>/<nonce>' with the claim, and every later write of its
-- own is conditional on it. A later attempt of the same run takes the row over (attempts never
-- overlap); another job of the same attempt is refused.
--
-- upload_key: the object key the job is uploading to, written before the upload starts. A runner
-- that is lost mid-upload runs no post step to abort its multipart upload; the finalizer job (the
-- sweep with dispatch-id) reads the key here and aborts what was left open.
--
-- finished_at: each writer (the runner's clock, the function's) stamped it with its own clock, so
-- the order of finished_at and created_at (the database's default now()) was only as good as the
-- clocks' agreement. From this migration the database stamps it on the move to a terminal status.

alter table public.backup_history
  add column if not exists claimed_by text;

alter table public.backup_history
  add column if not exists upload_key text;

alter table public.backup_history
  drop constraint if exists backup_history_claimed_by_check;
alter table public.backup_history
  add constraint backup_history_claimed_by_check check (claimed_by is null or char_length(claimed_by) <= 200);
alter table public.backup_history
  drop constraint if exists backup_history_upload_key_check;
alter table public.backup_history
  add constraint backup_history_upload_key_check check (upload_key is null or octet_length(upload_key) <= 1024);

-- 009's guard, extended: a terminal row never changes, sha256 only arrives with the move to
-- success, and the move to a terminal status is stamped with the database's clock.
create or replace function public.backup_history_guard_transition()
returns trigger
language plpgsql
as $$
begin
  if old.status <> 'in_progress' then
    raise exception 'backup_history row % is already %, it cannot change', old.id, old.status
      using errcode = 'check_violation';
  end if;
  if new.sha256 is not null and new.status <> 'success' then
    raise exception 'backup_history row %: sha256 is only set when the row moves to success', old.id
      using errcode = 'check_violation';
  end if;
  if new.status <> 'in_progress' then
    new.finished_at := now();
  end if;
  return new;
end;
$$;
