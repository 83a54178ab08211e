#ifndef WAYBILL_CGMIME_SHIM_H
#define WAYBILL_CGMIME_SHIM_H
#include <gmime/gmime.h>

/* GMime's type checks are function-like macros, which Swift cannot import. Each helper checks
 * the GObject type and returns the object as the subclass, or NULL when it is something else,
 * so the Swift side never casts a pointer blindly. */

static inline GMimePart *waybill_as_part(GMimeObject *object) {
    return GMIME_IS_PART(object) ? (GMimePart *) object : NULL;
}

static inline GMimeMultipart *waybill_as_multipart(GMimeObject *object) {
    return GMIME_IS_MULTIPART(object) ? (GMimeMultipart *) object : NULL;
}

static inline GMimeMessagePart *waybill_as_message_part(GMimeObject *object) {
    return GMIME_IS_MESSAGE_PART(object) ? (GMimeMessagePart *) object : NULL;
}

static inline int waybill_message_header_count(GMimeMessage *message) {
    return g_mime_header_list_get_count(g_mime_object_get_header_list((GMimeObject *) message));
}

/* The addr-spec of a mailbox, or NULL for a group. */
static inline const char *waybill_mailbox_addr(InternetAddress *address) {
    return INTERNET_ADDRESS_IS_MAILBOX(address)
        ? internet_address_mailbox_get_addr((InternetAddressMailbox *) address) : NULL;
}

/* The members of a group, or NULL for a mailbox. */
static inline InternetAddressList *waybill_group_members(InternetAddress *address) {
    return INTERNET_ADDRESS_IS_GROUP(address)
        ? internet_address_group_get_members((InternetAddressGroup *) address) : NULL;
}

/* Adds `filter` to a stream made by g_mime_stream_filter_new and drops the caller's reference
 * (the stream keeps its own). */
static inline void waybill_stream_filter_add(GMimeStream *stream, GMimeFilter *filter) {
    g_mime_stream_filter_add((GMimeStreamFilter *) stream, filter);
    g_object_unref(filter);
}

#endif
