-- finished_at, plus database-side guards for the state machine, so that no writer
-- (the action, a hand-written script, an edge function) can leave a row inconsistent.

alter table public.backup_history
  add column if not exists finished_at timestamptz;

-- Rows finished before this column existed: their creation is the best known finish time.
-- (Matches no row on a re-run, so the guard trigger below never sees it.)
update public.backup_history set finished_at = created_at
 where status <> 'in_progress' and finished_at is null;

-- A terminal row carries its result: success has a key, a size and a finish time;
-- failed has a reason and a finish time. error_text stays short enough to show in a UI.
alter table public.backup_history
  drop constraint if exists backup_history_terminal_fields_check;
alter table public.backup_history
  add constraint backup_history_terminal_fields_check check (
    case status
      when 'in_progress' then finished_at is null
      when 'success' then coalesce(s3_key, '') <> '' and size_bytes is not null
                          and size_bytes >= 0 and finished_at is not null and error_text is null
      when 'failed' then coalesce(error_text, '') <> '' and finished_at is not null
    end
  );
alter table public.backup_history
  drop constraint if exists backup_history_error_text_length_check;
alter table public.backup_history
  add constraint backup_history_error_text_length_check
  check (error_text is null or char_length(error_text) <= 1000);

-- Only in_progress -> success | failed. A terminal row is never modified again.
create or replace function public.backup_history_guard_transition()
returns trigger
language plpgsql
as $$
begin
  if old.status <> 'in_progress' then
    raise exception 'backup_history row % is already %, it cannot change', old.id, old.status
      using errcode = 'check_violation';
  end if;
  return new;
end;
$$;

drop trigger if exists backup_history_guard_transition on public.backup_history;
create trigger backup_history_guard_transition
  before update on public.backup_history
  for each row execute function public.backup_history_guard_transition();
