-- expired_at: when the prune sub-action deleted (or began to delete) this backup's object, so that
-- a row never points at a missing object without saying so. The app hides or greys out a row with
-- expired_at set; its s3_key, size and sha256 stay as they were, for the record.
--
-- The one change a finished row may take: a `success` row whose expired_at is null gets expired_at,
-- stamped with the database's clock (like finished_at in 010), and nothing else. It is never unset,
-- never set twice, never set on a failed or in_progress row. Every other write to a finished row is
-- still refused.
--
-- The prune marks the row first, then deletes the object: should the delete fail, the row says
-- expired while the object may still exist (harmless; the next prune retries the delete), never
-- the reverse.

alter table public.backup_history
  add column if not exists expired_at timestamptz;

alter table public.backup_history
  drop constraint if exists backup_history_expired_at_check;
alter table public.backup_history
  add constraint backup_history_expired_at_check check (expired_at is null or status = 'success');

-- The prune lists one prefix's success rows newest first; the app filters out expired ones.
create index if not exists backup_history_success_finished_idx
  on public.backup_history (finished_at desc, id desc)
  where status = 'success';

-- 010's guard, extended with the one change a finished row may take.
create or replace function public.backup_history_guard_transition()
returns trigger
language plpgsql
as $$
begin
  if old.status <> 'in_progress' then
    -- Every column but expired_at compared at once, so a column added later is covered too.
    if old.status = 'success' and old.expired_at is null and new.expired_at is not null
       and (to_jsonb(new) - 'expired_at') = (to_jsonb(old) - 'expired_at') then
      new.expired_at := now();
      return new;
    end if;
    raise exception 'backup_history row % is already %, it cannot change%', old.id, old.status,
      case when old.status = 'success' and old.expired_at is null
           then ' (but for expired_at being set, alone)' else '' end
      using errcode = 'check_violation';
  end if;
  if new.expired_at is not null then
    raise exception 'backup_history row %: expired_at is only set on a success row, after it finished', old.id
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
