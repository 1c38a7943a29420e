/* tp-lock.h — one process at a time per output: a run that writes a model, its
 * checkpoint folder and its report first takes PATH.lock, a file holding its
 * pid, created exclusively. A second process given the same output is refused
 * with the holder's pid; a lock whose process is gone (killed, crashed) is
 * taken over with a message. The lock is removed when released. */
#ifndef TP_LOCK_H
#define TP_LOCK_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct _TpLock TpLock;

/* Takes path + ".lock". Returns the owned lock, or NULL with G_FILE_ERROR
 * (G_FILE_ERROR_EXIST when another live process holds it) naming path and the
 * holder's pid. */
TpLock *tp_lock_acquire(const char *path, GError **error);

/* Removes the lock file and frees lock; NULL is allowed. */
void tp_lock_release(TpLock *lock);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpLock, tp_lock_release)

G_END_DECLS

#endif /* TP_LOCK_H */
