use super::*;

#[tokio::test(start_paused = true)]
async fn a_configured_rate_spaces_call_starts_evenly() {
    let governor = Governor::new(16, Some(10.0));
    let begin = Instant::now();
    for _ in 0..5 {
        governor
            .acquire(Priority::Decision)
            .await
            .answered(Answer::Answered {
                near_limit: false,
                limited: false,
            });
    }
    assert_eq!(begin.elapsed(), Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_every_call_of_the_process() {
    let governor = Governor::new(16, None);
    governor
        .acquire(Priority::Create)
        .await
        .answered(Answer::PushedBack {
            retry_after: Some(Duration::from_secs(3)),
        });
    let begin = Instant::now();
    let _other = governor.acquire(Priority::Background).await;
    assert_eq!(begin.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn push_back_without_retry_after_backs_off_and_sets_a_pace() {
    let governor = Governor::new(16, None);
    for _ in 0..20 {
        governor
            .acquire(Priority::Decision)
            .await
            .answered(Answer::Answered {
                near_limit: false,
                limited: false,
            });
    }
    assert_eq!(governor.rate(), None, "no pace before Jira pushes back");
    let permit = governor.acquire(Priority::Decision).await;
    answer_while_a_call_waits(&governor, permit, Answer::PushedBack { retry_after: None });
    let pause = governor.paused_for().expect("a pause");
    assert!(pause >= Duration::from_millis(250), "{pause:?}");
    let rate = governor.rate().expect("a pace");
    assert!((17.0..=19.0).contains(&rate), "{rate}");
}

#[tokio::test(start_paused = true)]
async fn a_wave_of_refusals_without_retry_after_backs_off_once_not_once_per_call() {
    let governor = Governor::new(16, None);
    let wave: Vec<_> = {
        let mut permits = Vec::new();
        for _ in 0..16 {
            permits.push(governor.acquire(Priority::Create).await);
        }
        permits
    };
    for permit in wave {
        permit.answered(Answer::PushedBack { retry_after: None });
    }
    // One step of the back-off (250 ms to 750 ms), not sixteen (which reach its 30 s cap).
    let pause = governor.paused_for().expect("a pause");
    assert!(pause <= Duration::from_millis(750), "{pause:?}");
}

/// Ends `permit` with `answer` while a call waits for its turn: the governor is the
/// bottleneck, so push-back says the pace is too fast.
fn answer_while_a_call_waits(governor: &Governor, permit: Permit<'_>, answer: Answer) {
    let background = Priority::Background as usize;
    lock(&governor.state).waiting[background] += 1;
    permit.answered(answer);
    lock(&governor.state).waiting[background] -= 1;
}

async fn answer_some(governor: &Governor, count: usize) {
    for _ in 0..count {
        governor
            .acquire(Priority::Decision)
            .await
            .answered(Answer::Answered {
                near_limit: false,
                limited: false,
            });
    }
}

#[tokio::test(start_paused = true)]
async fn push_back_from_calls_already_in_flight_cuts_the_pace_once() {
    let governor = Governor::new(16, Some(100.0));
    answer_some(&governor, MIN_EVIDENCE).await;
    let first = governor.acquire(Priority::Decision).await;
    let second = governor.acquire(Priority::Decision).await;
    answer_while_a_call_waits(&governor, first, Answer::PushedBack { retry_after: None });
    let after_one = governor.rate();
    assert!(after_one < Some(100.0), "{after_one:?}");
    answer_while_a_call_waits(&governor, second, Answer::PushedBack { retry_after: None });
    assert_eq!(governor.rate(), after_one);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_while_no_call_waits_only_pauses() {
    let governor = Governor::new(16, Some(20.0));
    answer_some(&governor, MIN_EVIDENCE).await;
    governor
        .acquire(Priority::Decision)
        .await
        .answered(Answer::PushedBack { retry_after: None });
    assert!(governor.paused_for().is_some());
    assert_eq!(governor.rate(), Some(20.0));
}

#[tokio::test(start_paused = true)]
async fn waiting_creates_go_before_waiting_scans() {
    let governor = std::sync::Arc::new(Governor::new(1, None));
    let busy = governor.acquire(Priority::Decision).await;
    let order = std::sync::Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for priority in [Priority::Background, Priority::Create] {
        let (governor, order) = (governor.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let permit = governor.acquire(priority).await;
            lock(&order).push(priority);
            drop(permit);
        }));
        tokio::task::yield_now().await;
    }
    drop(busy);
    for task in tasks {
        task.await.expect("task");
    }
    assert_eq!(*lock(&order), [Priority::Create, Priority::Background]);
}

#[tokio::test(start_paused = true)]
async fn a_create_that_comes_while_decisions_wait_for_the_pace_takes_the_next_slot() {
    // Room in flight for all, but a pace of 10 calls a second: the decisions queue for
    // their slots, and a create that comes later must not queue behind them.
    let governor = std::sync::Arc::new(Governor::new(16, Some(10.0)));
    let order = std::sync::Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for priority in [Priority::Decision; 5]
        .into_iter()
        .chain([Priority::Create])
    {
        let (governor, order) = (governor.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let permit = governor.acquire(priority).await;
            lock(&order).push(priority);
            permit.answered(Answer::Answered {
                near_limit: false,
                limited: false,
            });
        }));
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.expect("task");
    }
    let create_at = lock(&order)
        .iter()
        .position(|p| *p == Priority::Create)
        .expect("the create ran");
    assert!(create_at <= 1, "the create went {create_at}th: {order:?}");
}

#[tokio::test(start_paused = true)]
async fn a_pause_set_while_calls_wait_for_the_pace_holds_them_all() {
    let governor = std::sync::Arc::new(Governor::new(16, Some(10.0)));
    let first = governor.acquire(Priority::Decision).await;
    let begin = Instant::now();
    let waiter = {
        let governor = governor.clone();
        tokio::spawn(async move { drop(governor.acquire(Priority::Decision).await) })
    };
    tokio::task::yield_now().await;
    first.answered(Answer::PushedBack {
        retry_after: Some(Duration::from_secs(2)),
    });
    waiter.await.expect("task");
    assert!(begin.elapsed() >= Duration::from_secs(2));
}

#[test]
fn a_lasting_rise_in_latency_becomes_the_usual_and_stops_shrinking_the_limit() {
    let governor = Governor::new(16, None);
    let mut state = lock(&governor.state);
    for _ in 0..100 {
        assert!(!state.latency_climbed(Duration::from_millis(5)));
    }
    let climbs: Vec<bool> = (0..2000)
        .map(|_| state.latency_climbed(Duration::from_millis(200)))
        .collect();
    assert!(
        climbs[..10].iter().any(|&climbed| climbed),
        "a sudden climb is seen"
    );
    assert!(
        !climbs[1900..].iter().any(|&climbed| climbed),
        "a new normal is not a climb"
    );
}

#[tokio::test(start_paused = true)]
async fn a_scan_waiting_behind_a_stream_of_decisions_gets_its_turn() {
    let governor = std::sync::Arc::new(Governor::new(1, Some(10.0)));
    let busy = governor.acquire(Priority::Decision).await;
    // Decisions keep arriving, one always waiting.
    let stream = {
        let governor = governor.clone();
        tokio::spawn(async move {
            loop {
                drop(governor.acquire(Priority::Decision).await);
            }
        })
    };
    tokio::task::yield_now().await;
    let scan = {
        let governor = governor.clone();
        tokio::spawn(async move { drop(governor.acquire(Priority::Background).await) })
    };
    drop(busy);
    tokio::time::timeout(Duration::from_secs(10), scan)
        .await
        .expect("the scan got its turn")
        .expect("task");
    stream.abort();
}

#[tokio::test(start_paused = true)]
async fn a_create_waiting_for_room_sleeps_instead_of_spinning() {
    let governor = std::sync::Arc::new(Governor::new(1, None));
    let busy = governor.acquire(Priority::Decision).await;
    let waiter = {
        let governor = governor.clone();
        tokio::spawn(async move { drop(governor.acquire(Priority::Create).await) })
    };
    // A spinning waiter never lets paused time move on: this sleep would not return.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!waiter.is_finished());
    drop(busy);
    waiter.await.expect("task");
}

#[tokio::test(start_paused = true)]
async fn refusals_right_after_pauses_do_not_cut_the_pace() {
    let governor = Governor::new(16, Some(20.0));
    answer_some(&governor, MIN_EVIDENCE).await;
    for _ in 0..6 {
        let permit = governor.acquire(Priority::Decision).await;
        let refusal = Answer::PushedBack {
            retry_after: Some(Duration::from_secs(1)),
        };
        answer_while_a_call_waits(&governor, permit, refusal);
    }
    let rate = governor.rate().expect("a pace");
    assert!(rate >= 10.0, "one cut at most, to half at most: {rate}");
}

#[tokio::test(start_paused = true)]
async fn the_limit_in_flight_shrinks_on_push_back_and_grows_back() {
    let governor = Governor::new(16, None);
    answer_some(&governor, MIN_EVIDENCE).await;
    assert_eq!(governor.limit(), 16);
    let permit = governor.acquire(Priority::Decision).await;
    let refusal = Answer::PushedBack {
        retry_after: Some(Duration::ZERO),
    };
    answer_while_a_call_waits(&governor, permit, refusal);
    assert_eq!(governor.limit(), 14);
    for _ in 0..200 {
        governor
            .acquire(Priority::Decision)
            .await
            .answered(Answer::Answered {
                near_limit: false,
                limited: false,
            });
    }
    assert_eq!(governor.limit(), 16);
}

const KEPT_UP: Answer = Answer::Answered {
    near_limit: false,
    limited: false,
};

#[tokio::test(start_paused = true)]
async fn a_burst_into_a_jira_that_keeps_up_reaches_the_ceiling_after_one_round_trip() {
    let governor = std::sync::Arc::new(Governor::new(256, None));
    assert_eq!(governor.limit(), 16);
    let calls = spawn_calls(&governor, Priority::Create, 1000, Some(KEPT_UP));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        governor.limit(),
        256,
        "the first wave's 16 answers take it to the ceiling"
    );
    for call in calls {
        call.await.expect("task");
    }
    let permit = governor.acquire(Priority::Decision).await;
    answer_while_a_call_waits(
        &governor,
        permit,
        Answer::PushedBack {
            retry_after: Some(Duration::ZERO),
        },
    );
    let cut = governor.limit();
    answer_some(&governor, 10).await;
    assert!(
        governor.limit() <= cut + 1,
        "after push-back it grows by one per round trip"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_of_a_quiet_spell_do_not_make_the_first_wave_larger() {
    let governor = Governor::new(256, None);
    // The start-up checks: a few calls, one at a time.
    answer_some(&governor, 5).await;
    assert_eq!(governor.limit(), 16, "{governor:?}");
}

#[tokio::test(start_paused = true)]
async fn a_jira_that_announces_a_rate_limit_gets_no_slow_start() {
    let governor = Governor::new(256, None);
    for _ in 0..16 {
        governor
            .acquire(Priority::Create)
            .await
            .answered(Answer::Answered {
                near_limit: false,
                limited: true,
            });
    }
    assert_eq!(
        governor.limit(),
        16,
        "one per round trip at most: {governor:?}"
    );
}

/// Spawns `count` calls of `priority` that each take their turn and end after a round trip of
/// 100 ms.
fn spawn_waiters(
    governor: &std::sync::Arc<Governor>,
    priority: Priority,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    spawn_calls(governor, priority, count, None)
}

/// [`spawn_waiters`] whose calls end with `answer`, when there is one.
fn spawn_calls(
    governor: &std::sync::Arc<Governor>,
    priority: Priority,
    count: usize,
    answer: Option<Answer>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|_| {
            let governor = governor.clone();
            tokio::spawn(async move {
                let permit = governor.acquire(priority).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                match answer {
                    Some(answer) => permit.answered(answer),
                    None => drop(permit),
                }
            })
        })
        .collect()
}

/// A governor whose first call Jira answered with `Retry-After: 2`.
async fn paused_for_two_seconds() -> std::sync::Arc<Governor> {
    let governor = std::sync::Arc::new(Governor::new(16, None));
    governor
        .acquire(Priority::Create)
        .await
        .answered(Answer::PushedBack {
            retry_after: Some(Duration::from_secs(2)),
        });
    governor
}

#[tokio::test(start_paused = true)]
async fn a_call_that_ends_wakes_one_waiter_not_all_of_them() {
    let governor = std::sync::Arc::new(Governor::new(1, None));
    let busy = governor.acquire(Priority::Create).await;
    let waiters = spawn_waiters(&governor, Priority::Create, 200);
    tokio::task::yield_now().await;
    let looks_before = lock(&governor.state).looks;
    drop(busy);
    for waiter in waiters {
        waiter.await.expect("task");
    }
    let looks = lock(&governor.state).looks - looks_before;
    // Each of the 200 looks once when woken (twice at most when a wake-up races a start);
    // waking every waiter at each call end would be 200 + 199 + ... looks.
    assert!(looks <= 400, "{looks} looks for 200 calls");
}

#[tokio::test(start_paused = true)]
async fn waiters_that_find_a_pause_all_start_when_it_ends_without_waiting_for_a_call_to_end() {
    let governor = paused_for_two_seconds().await;
    let waiters = spawn_waiters(&governor, Priority::Decision, 10);
    let begin = Instant::now();
    for waiter in waiters {
        waiter.await.expect("task");
    }
    assert_eq!(
        begin.elapsed(),
        Duration::from_millis(2100),
        "all started at once at 2 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_gives_up_while_it_keeps_the_time_hands_it_on() {
    let governor = paused_for_two_seconds().await;
    // The first to look keeps the time; it gives up while the others wait to be woken.
    let keeper = spawn_waiters(&governor, Priority::Create, 1);
    tokio::task::yield_now().await;
    let others = spawn_waiters(&governor, Priority::Create, 3);
    tokio::task::yield_now().await;
    keeper[0].abort();
    for waiter in others {
        tokio::time::timeout(Duration::from_secs(3), waiter)
            .await
            .expect("a waiter started when the pause ended")
            .expect("task");
    }
}
